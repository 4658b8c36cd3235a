"""longthought.results"""
