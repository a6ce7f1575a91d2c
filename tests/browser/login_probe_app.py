"""A minimal st.login app: proves the sign-in plumbing (provider, secrets, Streamlit, Chromium)
independently of the portal. Used by test_sign_in_harness.py."""

import streamlit as st

st.set_page_config(page_title="登录探针", layout="wide")
st.title("慧治登录探针")
if not st.user.is_logged_in:
    st.write("尚未登录。")
    if st.button("登录", key="login-default"):
        st.login()
else:
    st.write(f"已登录：{st.user.get('name')}（{st.user.get('title')}）")
    st.json({k: st.user.get(k) for k in ("sub", "email", "groups", "department", "iss")})
    if st.button("退出登录", key="logout"):
        st.logout()
    for n in range(40):
        st.write(f"第 {n + 1} 行：用于检验整页截图是否包含容器下方的内容。")
    st.write("页面底部标记 END-OF-PAGE")
