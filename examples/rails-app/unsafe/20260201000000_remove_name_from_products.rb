# Destructive: the old code still selects `name` while this runs. Copy it
# into db/migrate to see the migration guard block the deploy.
class RemoveNameFromProducts < ActiveRecord::Migration[7.1]
  def change
    remove_column :products, :name, :string
  end
end
