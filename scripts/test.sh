#!/usr/bin/env bash
# The whole test suite (what `make test` and .ci/run run): services, browser, lint, types, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's Chromium for the browser tests"
  (apt-get install -y -q chromium >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
fi
if ! command -v caddy >/dev/null; then
  echo "installing Debian's Caddy for the HTTPS proxy tests"
  (apt-get install -y -q caddy >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q caddy >/dev/null)
fi
export CLICKME_IMAGENET_SAMPLE="${CLICKME_IMAGENET_SAMPLE:-$(cd .. && pwd)/shared/imagenet-sample}"

.venv/bin/ruff check --no-cache .  # all of it: backend, tests, benchmarks, scripts, migrations
.venv/bin/mypy  # [tool.mypy] in pyproject.toml: backend/clickme, with pydantic's plugin
.venv/bin/pytest -q -p no:cacheprovider "$@"
