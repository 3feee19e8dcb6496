# v1: products(name, legacy_code, timestamps).
class Product < ApplicationRecord
  # What this release writes for a new product (each release's model says).
  def self.record!(name)
    create!(name: name, legacy_code: "L-#{SecureRandom.hex(3)}")
  end
end
