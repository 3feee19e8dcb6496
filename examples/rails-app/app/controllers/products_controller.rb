require "erb"

class ProductsController < ApplicationController
  # GET / : which release and color answered, and what the shared database holds.
  def index
    count = Product.count
    names = Product.order(id: :desc).limit(10).pluck(:name)
    schema = ActiveRecord::Base.connection.select_value("SELECT max(version) FROM schema_migrations")
    h = ->(s) { ERB::Util.html_escape(s) }
    items = names.map { |n| "<li>#{h.(n)}</li>" }.join
    html = <<~HTML
      #{release_line}
      <!doctype html>
      <title>rails-app</title>
      <h1>release #{h.(ENV['BLUEGREEN_RELEASE'] || 'dev')} (color #{h.(ENV['BLUEGREEN_COLOR'] || 'none')}): #{count} products</h1>
      <p>schema version #{h.(schema)}</p>
      <ol>#{items}</ol>
    HTML
    render html: html.html_safe
  end

  # POST /products : write a row, then read the count back. The load test
  # hits this, so every request both writes and reads the database.
  def create
    name = params[:name].presence || "product-#{SecureRandom.hex(4)}"
    Product.record!(name)
    render plain: "#{release_line}\nproducts #{Product.count}\n", status: :created
  end
end
