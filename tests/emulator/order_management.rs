//! The Order Management API v2.

use super::*;

/// The Order Management API v2 (specification 2.1): a receipt once, a category
/// replaced, the order read back; the spec's `ErrorResponse` for the rest.
#[tokio::test]
async fn order_management_receipts_categories_and_orders() {
    let h = Harness::new().await;
    let keys = emulator::TEST_MERCHANT;
    let token = h.token(keys).await;
    let reference = h.paid(keys, &token).await;
    let receipt = json!({
        "orderLines": [{
            "name": "socks", "id": "line_item_1", "totalAmount": 1000,
            "totalAmountExcludingTax": 800, "totalTaxAmount": 200, "taxRate": 2500,
            "unitInfo": {"unitPrice": 400, "quantity": "2.5", "quantityUnit": "KG"}
        }],
        "bottomLine": {"currency": "NOK", "posId": "pos_122"}
    });
    let call =
        |method: Method, path: String| h.api(keys, &token, method, &path).msn(emulator::TEST_MSN);
    let receipts = format!("/order-management/v2/ECOM/receipts/{reference}");
    let first = call(Method::POST, receipts.clone())
        .json(&receipt)
        .send()
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(uuid::Uuid::parse_str(first.json().as_str().unwrap()).is_ok());
    // Once only.
    let again = call(Method::POST, receipts.clone())
        .json(&receipt)
        .send()
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.content_type, "application/json");
    assert!(again.json()["instance"].is_string());
    // A category, then another: the latest is kept. `ecom` in lower case too.
    for category in ["GENERAL", "RECEIPT"] {
        let put = call(
            Method::PUT,
            format!("/order-management/v2/ecom/categories/{reference}"),
        )
        .json(&json!({"category": category, "orderDetailsUrl": "https://example.com/orders/1"}))
        .send()
        .await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let order = call(
        Method::GET,
        format!("/order-management/v2/ECOM/{reference}"),
    )
    .send()
    .await;
    assert_eq!(order.status, 200, "{}", order.body);
    let order = order.json();
    assert_eq!(order["category"]["category"], "RECEIPT");
    assert_eq!(order["receipt"], receipt);
    // An order that does not exist, for this MSN: 404.
    let unknown = call(
        Method::POST,
        "/order-management/v2/ECOM/receipts/no-such-order".into(),
    )
    .json(&receipt)
    .send()
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // What the spec refuses: 400 naming the field.
    let mut bad = receipt.clone();
    bad["orderLines"][0]["unitInfo"]["quantity"] = json!("2,5");
    let other = h.paid(keys, &token).await;
    let refused = call(
        Method::POST,
        format!("/order-management/v2/ECOM/receipts/{other}"),
    )
    .json(&bad)
    .send()
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let v = refused.json();
    assert_eq!(v["title"], "One or more validation errors occurred.");
    assert_eq!(
        v["invalidParams"][0]["name"],
        "orderLines[0].unitInfo.quantity"
    );
    let wrong_type = call(
        Method::GET,
        format!("/order-management/v2/CARD/{reference}"),
    )
    .send()
    .await;
    assert_eq!(wrong_type.status, 400, "{}", wrong_type.body);
    // Without a token: the same 401 as every access-token API.
    let anonymous = h
        .call(
            Test,
            Method::GET,
            &format!("/order-management/v2/ECOM/{reference}"),
        )
        .keys(keys)
        .msn(emulator::TEST_MSN)
        .send()
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
}
