"""longthought.teacher"""
