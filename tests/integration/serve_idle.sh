#!/usr/bin/env bash
# erg serve with 10,000 idle client connections: new requests still served, RSS per connection bounded, descriptors given back.
exec python3 -B "$ERG_ROOT/tests/integration/serve_idle.py"
