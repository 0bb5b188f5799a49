module @@MODULE@@

go 1.23
