"""longthought.problems"""
