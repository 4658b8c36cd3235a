"""longthought.evaluate"""
