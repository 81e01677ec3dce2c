// The staff API of docs/api.md: the session's CSRF token goes with every state-changing request.

import { request } from "../api.js";

const PLAYERS_PER_PAGE = 50;

let csrfToken = "";

function remember(me) {
  csrfToken = me.csrf_token;
  return me;
}

function write(method, path, body) {
  return request(method, path, body, { "X-CSRF-Token": csrfToken });
}

export const staffApi = {
  playersPerPage: PLAYERS_PER_PAGE,
  me: async () => remember(await request("GET", "/api/staff/me")),
  login: async (email, password) =>
    remember(await request("POST", "/api/staff/login", { email, password })),
  logout: () => write("POST", "/api/staff/logout"),
  campaigns: () => request("GET", "/api/admin/campaigns"),
  campaign: (id) => request("GET", `/api/admin/campaigns/${id}`),
  campaignStats: (id) => request("GET", `/api/admin/campaigns/${id}/stats`),
  campaignReliability: (id) => request("GET", `/api/admin/campaigns/${id}/reliability`),
  campaignUnwinnable: (id) => request("GET", `/api/admin/campaigns/${id}/unwinnable`),
  campaignImages: (id) => request("GET", `/api/admin/campaigns/${id}/images?per_page=24`),
  createCampaign: (settings) => write("POST", "/api/admin/campaigns", settings),
  updateCampaign: (id, changes) => write("PATCH", `/api/admin/campaigns/${id}`, changes),
  changeState: (id, state) => write("POST", `/api/admin/campaigns/${id}/state`, { state }),
  players: (page, flaggedOnly, campaignId) =>
    request(
      "GET",
      `/api/admin/players?page=${page}&per_page=${PLAYERS_PER_PAGE}&flagged=${flaggedOnly}` +
        (campaignId ? `&campaign=${campaignId}` : ""),
    ),
  player: (playerId) => request("GET", `/api/admin/players/${playerId}`),
  roundPoints: (roundId) => request("GET", `/api/admin/rounds/${roundId}/points`),
  exclude: (playerId, reason) =>
    write("POST", `/api/admin/players/${playerId}/exclude`, { reason }),
  reinstate: (playerId) => write("DELETE", `/api/admin/players/${playerId}/exclude`),
  refreshFlags: () => write("POST", "/api/admin/players/flags/refresh"),
  resolveFlag: (playerId, kind) =>
    write("POST", `/api/admin/players/${playerId}/flags/${encodeURIComponent(kind)}/resolve`),
  imageSets: () => request("GET", "/api/admin/image-sets"),
  imageSetPage: (id, page, perPage) =>
    request("GET", `/api/admin/image-sets/${id}/images?page=${page}&per_page=${perPage}`),
  setCatch: (setId, imageId, isCatch) =>
    write("PATCH", `/api/admin/image-sets/${setId}/images/${imageId}`, { is_catch: isCatch }),
  uploadZip: (formData) => write("POST", "/api/admin/image-sets/upload", formData),
  importFolder: (path, set) => write("POST", "/api/admin/image-sets/import-folder", { path, set }),
  models: () => request("GET", "/api/admin/models"),
  computeAccuracy: (name, imageSetId) =>
    write("POST", `/api/admin/models/${encodeURIComponent(name)}/accuracy`, {
      image_set_id: imageSetId,
    }),
  tryModel: (name, imageId) =>
    request("GET", `/api/admin/models/${encodeURIComponent(name)}/try?image_id=${imageId}`),
  alignment: (campaignId, imageSetId) =>
    request(
      "GET",
      `/api/admin/campaigns/${campaignId}/alignment` +
        (imageSetId ? `?image_set_id=${imageSetId}` : ""),
    ),
  alignmentJobs: (campaignId) =>
    request("GET", `/api/admin/alignment-jobs?campaign=${campaignId}`),
  startAlignment: (body) => write("POST", "/api/admin/alignment-jobs", body),
  cancelAlignment: (id) => write("POST", `/api/admin/alignment-jobs/${id}/cancel`),
  exports: () => request("GET", "/api/admin/exports"),
  startExport: (body) => write("POST", "/api/admin/exports", body),
  previewExport: (body) => write("POST", "/api/admin/exports/preview", body),
  cancelExport: (id) => write("POST", `/api/admin/exports/${id}/cancel`),
};
