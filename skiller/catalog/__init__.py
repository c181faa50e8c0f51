"""skiller/catalog"""
