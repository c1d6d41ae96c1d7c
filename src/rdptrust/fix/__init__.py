"""rdptrust.fix"""
