# v2, EXPAND: a nullable column. The v1 code still serving next to this
# release does not know it and does not need to.
class AddDescriptionToProducts < ActiveRecord::Migration[6.1]
  def change
    add_column :products, :description, :string
  end
end
