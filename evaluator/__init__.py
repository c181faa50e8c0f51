"""evaluator"""
