"""skiller/llm"""
