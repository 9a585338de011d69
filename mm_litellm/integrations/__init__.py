"""The only package that imports LiteLLM: it translates between LiteLLM's untyped dicts and ours."""
