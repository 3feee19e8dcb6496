# v1: products(name, legacy_code, timestamps).
class Product < ApplicationRecord
end
