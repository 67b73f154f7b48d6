"""Satisfaction after delivery: the recipient rates a shipment through its feedback link."""
