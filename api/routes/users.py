from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from api import crud
from api.deps import CurrentUser, SessionDep
from api.schemas import Token, UserPublic, UserRegister
from api.security import create_access_token

router = APIRouter(prefix="/api/users", tags=["users"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
def register(body: UserRegister, session: SessionDep):
    try:
        return crud.create_user(session, email=body.email, password=body.password)
    except crud.AlreadyExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "An account with this email exists: log in instead"
        ) from None


@router.post("/login", response_model=Token)
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep):
    user = crud.authenticate(session, email=form.username, password=form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Incorrect email or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Token(access_token=create_access_token(user.id))


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser):
    return user
