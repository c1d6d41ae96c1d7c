"""rdptrust.report"""
