"""longthought.curate"""
