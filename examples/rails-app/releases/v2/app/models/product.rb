# v2: stops using legacy_code. Ignoring the column first is Rails' recipe
# for dropping it later: once no running code reads or writes it, the
# contract phase (v3, db/post_migrate) can remove it safely.
class Product < ApplicationRecord
  self.ignored_columns = ["legacy_code"]

  def self.record!(name)
    create!(name: name, description: "made by #{ENV.fetch('BLUEGREEN_RELEASE', 'dev')}")
  end
end
