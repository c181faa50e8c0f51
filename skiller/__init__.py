"""skiller"""
