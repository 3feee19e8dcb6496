# DESTRUCTIVE (applied on top of v1): drops legacy_code in the expand phase
# while v1, which still inserts it, keeps serving. The migration guard
# blocks this (rule remove-column); forced through, the old color's
# POST /products fails with PG::UndefinedColumn. The safe way is v2 + v3.
class RemoveLegacyCodeFromProducts < ActiveRecord::Migration[6.1]
  def change
    remove_column :products, :legacy_code, :string
  end
end
