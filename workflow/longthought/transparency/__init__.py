"""longthought.transparency"""
