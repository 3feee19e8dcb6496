# v1: the table as the first release knows it.
class CreateProducts < ActiveRecord::Migration[6.1]
  def change
    create_table :products do |t|
      t.string :name, null: false
      t.string :legacy_code
      t.timestamps
    end
  end
end
