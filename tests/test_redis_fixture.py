from daemon.redis_server import RedisServer


async def test_own_redis_server_answers_and_is_not_6379(redis_server: RedisServer, redis_client) -> None:
    assert redis_server.port != 6379
    assert await redis_client.ping() is True
    info = await redis_client.info("server")
    assert int(info["tcp_port"]) == redis_server.port
