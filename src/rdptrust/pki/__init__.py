"""rdptrust.pki"""
