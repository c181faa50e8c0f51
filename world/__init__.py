"""world/"""
