"""rdptrust.lab"""
