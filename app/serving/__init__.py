"""Serving the LLM: ``vllm_server`` starts, checks and stops ragent's own vLLM process (``ragent llm serve``)."""
