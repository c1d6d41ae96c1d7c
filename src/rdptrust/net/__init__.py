"""rdptrust.net"""
