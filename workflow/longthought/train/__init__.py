"""longthought.train"""
