"""rdptrust.store"""
