# Expand: a nullable column the old code simply ignores.
class AddPriceToProducts < ActiveRecord::Migration[7.1]
  def change
    add_column :products, :price_cents, :integer
  end
end
