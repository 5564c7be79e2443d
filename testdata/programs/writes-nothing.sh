#!/bin/sh
# Succeeds at every action and writes no record: a program that forgot to, or
# writes it somewhere else.
exit 0
