from django.urls import path

from commerce.api import (
    after_sales,
    coupons,
    membership,
    reminders,
    sandbox,
    subscriptions,
    tickets,
    views,
    withdrawals,
)

urlpatterns = [
    path("communities/<slug:slug>/products/", views.ProductListApi.as_view(), name="product-list"),
    path(
        "communities/<slug:slug>/products/<int:product_id>/",
        views.ProductDetailApi.as_view(),
        name="product-detail",
    ),
    path("orders/", views.OrderListCreateApi.as_view(), name="order-list"),
    path("orders/<int:order_id>/", views.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<int:order_id>/cancel/", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<int:order_id>/payment/", views.OrderPaymentApi.as_view(), name="order-payment"),
    path("orders/<int:order_id>/refund/", views.OrderEntryRefundApi.as_view(), name="order-entry-refund"),
    path(
        "orders/<int:order_id>/confirm-receipt/",
        views.OrderConfirmReceiptApi.as_view(),
        name="order-confirm-receipt",
    ),
    path(
        "orders/<int:order_id>/after-sales/",
        after_sales.OrderAfterSalesApi.as_view(),
        name="order-after-sales",
    ),
    path(
        "orders/<int:order_id>/after-sales/<int:after_sale_id>/return/",
        after_sales.OrderAfterSaleReturnApi.as_view(),
        name="order-after-sale-return",
    ),
    path(
        "orders/<int:order_id>/after-sales/<int:after_sale_id>/cancel/",
        after_sales.OrderAfterSaleCancelApi.as_view(),
        name="order-after-sale-cancel",
    ),
    path(
        "owner/after-sales/<int:after_sale_id>/approve/",
        after_sales.OwnerAfterSaleApproveApi.as_view(),
        name="owner-after-sale-approve",
    ),
    path(
        "owner/after-sales/<int:after_sale_id>/reject/",
        after_sales.OwnerAfterSaleRejectApi.as_view(),
        name="owner-after-sale-reject",
    ),
    path(
        "owner/after-sales/<int:after_sale_id>/receive/",
        after_sales.OwnerAfterSaleReceiveApi.as_view(),
        name="owner-after-sale-receive",
    ),
    path(
        "owner/communities/<slug:slug>/products/",
        views.OwnerProductListCreateApi.as_view(),
        name="owner-product-list",
    ),
    path(
        "owner/orders/<int:order_id>/refund/", views.OwnerOrderRefundApi.as_view(), name="owner-order-refund"
    ),
    path(
        "owner/orders/<int:order_id>/shipments/",
        views.OwnerOrderShipmentsApi.as_view(),
        name="owner-order-shipments",
    ),
    path("payments/stripe/webhook/", views.StripeWebhookApi.as_view(), name="stripe-webhook"),
    path("payments/wechatpay/notify/", views.WechatPayNotifyApi.as_view(), name="wechatpay-notify"),
    path("payments/sandbox/pay/", sandbox.SandboxPayApi.as_view(), name="sandbox-pay"),
    path(
        "payments/sandbox/transfer/confirm/",
        sandbox.SandboxTransferConfirmApi.as_view(),
        name="sandbox-transfer-confirm",
    ),
    path("payments/sandbox/notify/", sandbox.SandboxNotifyApi.as_view(), name="sandbox-notify"),
    path("me/coupons/", coupons.MyCouponsApi.as_view(), name="my-coupons"),
    path("me/coupons/claim/", coupons.CouponClaimApi.as_view(), name="my-coupons-claim"),
    path("me/reminders/", reminders.MyRemindersApi.as_view(), name="my-reminders"),
    path("me/subscriptions/", subscriptions.MySubscriptionsApi.as_view(), name="my-subscriptions"),
    path("communities/<slug:slug>/join/", membership.JoinApi.as_view(), name="community-join"),
    path("me/referrals/", membership.MyReferralsApi.as_view(), name="my-referrals"),
    path("me/tickets/", tickets.MyTicketsApi.as_view(), name="my-tickets"),
    path("me/withdrawals/", withdrawals.MyWithdrawalsApi.as_view(), name="my-withdrawals"),
    path(
        "me/withdrawals/<int:withdrawal_id>/",
        withdrawals.MyWithdrawalDetailApi.as_view(),
        name="my-withdrawal-detail",
    ),
    path(
        "owner/communities/<slug:slug>/check-ins/",
        tickets.OwnerCheckInApi.as_view(),
        name="owner-check-in",
    ),
]
