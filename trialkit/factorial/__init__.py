"""Factorial (MOST) screening designs: construction, power, costs and simulation."""
