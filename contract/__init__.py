"""contract/"""
