"""The revisions, oldest first: m0001 (the first release), m0002, m0003 …"""
