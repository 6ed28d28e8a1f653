"""Channel adapters: one folder per platform (verify + parse inbound, send outbound)."""
