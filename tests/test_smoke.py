async def test_me(client, controller):
    r = await client.get("/v1/auth/me", headers=controller.headers)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "controller"
