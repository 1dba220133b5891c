raise SystemExit("placeholder: tests/integration/test_send.py is being written")
