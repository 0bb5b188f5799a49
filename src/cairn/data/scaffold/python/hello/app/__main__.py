from app import greeting

print(greeting())
