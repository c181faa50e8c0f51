"""Environment runtime: load a domain's implementation and database, execute calls, hash state, serve MCP."""
