"""The OpenAI-compatible REST API, against the real app process and the official openai client."""
