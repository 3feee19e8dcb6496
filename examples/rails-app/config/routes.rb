Rails.application.routes.draw do
  get "up", to: "health#show"
  root "products#index"
  resources :products, only: [:index, :create]
end
