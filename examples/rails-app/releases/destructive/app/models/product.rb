# The destructive release: stops writing legacy_code and, in the same
# release, drops it in db/migrate. The old release still inserts it.
class Product < ApplicationRecord
  def self.record!(name)
    create!(name: name)
  end
end
