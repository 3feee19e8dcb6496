# v3, CONTRACT: drop the column v2 stopped using. This lives in
# db/post_migrate, so bluegreen runs it only after every color serves code
# that ignores legacy_code (BLUEGREEN_MIGRATION_PHASE=contract).
class RemoveLegacyCodeFromProducts < ActiveRecord::Migration[6.1]
  def change
    remove_column :products, :legacy_code, :string
  end
end
