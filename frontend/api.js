// The player API of docs/api.md: JSON over fetch, errors as ApiError.

/**
 * A failed request: HTTP status (0 for a network failure), the server's error code, and for an
 * invalid request the server's details (`[{loc, msg}]`).
 */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** Worth sending again unchanged: the network failed or the server had a 5xx. */
  get retryable() {
    return this.status === 0 || this.status >= 500;
  }
}

/** JSON over fetch (a FormData body goes as a multipart form); `headers` are added. */
export async function request(method, path, body, headers = {}) {
  const init = {
    method,
    headers: { Accept: "application/json", ...headers },
    credentials: "same-origin",
  };
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser sets the Content-Type and its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network_error", `network error: ${error.message}`);
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : {};
    throw new ApiError(
      response.status,
      error.code || "http_error",
      error.message || `HTTP ${response.status}`,
      error.details || [],
    );
  }
  return payload;
}

export const api = {
  me: () => request("GET", "/api/players/me"),
  /** After consent; `recruitment`: the Prolific or MTurk ids from the page's URL. */
  createPlayer: (recruitment = {}) =>
    request("POST", "/api/players", { ...recruitment, consent: true }),
  rename: (displayName) => request("PATCH", "/api/players/me", { display_name: displayName }),
  startRound: (viewportWidth, viewportHeight, campaign = null) =>
    request("POST", "/api/rounds", {
      campaign,
      viewport_width: viewportWidth,
      viewport_height: viewportHeight,
    }),
  /** The round's photo is on screen: the server starts its clock (once). */
  photoShown: (roundId) => request("POST", `/api/rounds/${roundId}/start`),
  sendPoints: (roundId, batch) => request("POST", `/api/rounds/${roundId}/points`, batch),
  skip: (roundId) => request("POST", `/api/rounds/${roundId}/skip`),
  finish: (roundId) => request("POST", `/api/rounds/${roundId}/finish`),
  round: (roundId) => request("GET", `/api/rounds/${roundId}`),
  campaign: (slug) => request("GET", `/api/campaigns/${encodeURIComponent(slug)}`),
  completion: (slug) => request("GET", `/api/campaigns/${encodeURIComponent(slug)}/completion`),
  /** The campaign's leaderboard (none: the demo's, over every campaign). */
  leaderboard: (campaign, limit = 10) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (campaign) query.set("campaign", campaign);
    return request("GET", `/api/leaderboard?${query}`);
  },
};
