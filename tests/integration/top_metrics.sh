#!/usr/bin/env bash
# erg top --metrics: /metrics read with the Prometheus client's parser while
# erg top ticks; each model's cpu + gpu joules equal erg top's NDJSON of the
# same tick; bad address and port in use exit 2 naming --metrics.
# san: yes
# The parser is Debian's python3-prometheus-client: a python3 first on PATH
# (pyenv, a venv) may not see it, /usr/bin/python3 does.
for py in python3 /usr/bin/python3; do
	if "$py" -c 'import prometheus_client.parser' 2>/dev/null; then
		exec "$py" -B "$ERG_ROOT/tests/integration/top_metrics.py"
	fi
done
echo "SKIP: no python3 with the Prometheus client: apt-get install python3-prometheus-client (make deps)"
exit 77
