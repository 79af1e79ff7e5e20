#!/usr/bin/env bash
# erg top --supply-watts: live ledger, regime, journal read back by erg ledger.
exec python3 -B "$ERG_ROOT/tests/integration/top_ledger.py"
