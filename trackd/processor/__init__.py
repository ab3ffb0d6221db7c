"""The processor: envelopes in queue order become users, devices, events, schema and issues."""
